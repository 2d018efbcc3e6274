//! Dependency graphs between operations and the cycles in them.
//!
//! Owns Tarjan's strongly-connected-components algorithm (iterative, so deep graphs cannot
//! overflow the stack) and the search for one shortest cycle inside a component. Nodes are
//! dense `usize` ids; every collection is ordered, so the same graph always yields the same
//! components and cycles. It knows nothing of Kafka: the queue checker builds the edges.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A directed graph whose edges carry a label of type `L`.
#[derive(Debug, Clone, Default)]
pub struct Graph<L: Ord + Clone> {
    /// from -> to -> labels on that edge.
    edges: BTreeMap<usize, BTreeMap<usize, BTreeSet<L>>>,
}

impl<L: Ord + Clone> Graph<L> {
    pub fn new() -> Graph<L> {
        Graph {
            edges: BTreeMap::new(),
        }
    }

    /// Adds `from -> to` labelled `label`. Self-loops are ignored: an operation does not
    /// depend on itself.
    pub fn add_edge(&mut self, from: usize, to: usize, label: L) {
        if from == to {
            return;
        }
        self.edges
            .entry(from)
            .or_default()
            .entry(to)
            .or_default()
            .insert(label);
        self.edges.entry(to).or_default();
    }

    /// Labels on `from -> to`.
    pub fn labels(&self, from: usize, to: usize) -> Option<&BTreeSet<L>> {
        self.edges.get(&from).and_then(|targets| targets.get(&to))
    }

    /// The subgraph of edges that carry a label accepted by `keep`, restricted to `nodes`.
    pub fn filtered(&self, nodes: &BTreeSet<usize>, keep: impl Fn(&L) -> bool) -> Graph<L> {
        let mut graph = Graph::new();
        for (&from, targets) in self.edges.range(..) {
            if !nodes.contains(&from) {
                continue;
            }
            for (&to, labels) in targets {
                if !nodes.contains(&to) {
                    continue;
                }
                for label in labels.iter().filter(|label| keep(label)) {
                    graph.add_edge(from, to, label.clone());
                }
            }
        }
        graph
    }

    fn successors(&self, node: usize) -> Vec<usize> {
        self.edges
            .get(&node)
            .map(|targets| targets.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Strongly connected components with more than one node, each sorted, in order of
    /// their smallest node.
    pub fn nontrivial_sccs(&self) -> Vec<BTreeSet<usize>> {
        let mut sccs: Vec<BTreeSet<usize>> = tarjan(self)
            .into_iter()
            .filter(|scc| scc.len() > 1)
            .collect();
        sccs.sort_by_key(|scc| scc.iter().next().copied());
        sccs
    }

    /// A shortest cycle through `start` (breadth-first), as the list of nodes starting at
    /// `start`; the last node has an edge back to `start`.
    pub fn cycle_through(&self, start: usize) -> Option<Vec<usize>> {
        let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for next in self.successors(node) {
                if next == start {
                    let mut path = vec![node];
                    let mut cursor = node;
                    while cursor != start {
                        cursor = *parent.get(&cursor)?;
                        path.push(cursor);
                    }
                    path.reverse();
                    return Some(path);
                }
                if let std::collections::btree_map::Entry::Vacant(entry) = parent.entry(next) {
                    entry.insert(node);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// Iterative Tarjan. Returns every SCC (including singletons).
fn tarjan<L: Ord + Clone>(graph: &Graph<L>) -> Vec<BTreeSet<usize>> {
    let nodes: Vec<usize> = graph.edges.keys().copied().collect();
    let mut index_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut lowlink: BTreeMap<usize, usize> = BTreeMap::new();
    let mut on_stack: BTreeSet<usize> = BTreeSet::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut next_index = 0usize;
    let mut sccs = Vec::new();

    for &root in &nodes {
        if index_of.contains_key(&root) {
            continue;
        }
        // Frames: (node, its successors, next successor to visit).
        let mut frames: Vec<(usize, Vec<usize>, usize)> = Vec::new();
        index_of.insert(root, next_index);
        lowlink.insert(root, next_index);
        next_index += 1;
        stack.push(root);
        on_stack.insert(root);
        frames.push((root, graph.successors(root), 0));

        while let Some(frame) = frames.last_mut() {
            let node = frame.0;
            if let Some(&next) = frame.1.get(frame.2) {
                frame.2 += 1;
                match index_of.get(&next).copied() {
                    None => {
                        index_of.insert(next, next_index);
                        lowlink.insert(next, next_index);
                        next_index += 1;
                        stack.push(next);
                        on_stack.insert(next);
                        frames.push((next, graph.successors(next), 0));
                    }
                    Some(next_index_value) if on_stack.contains(&next) => {
                        if let Some(low) = lowlink.get_mut(&node) {
                            *low = (*low).min(next_index_value);
                        }
                    }
                    Some(_) => {}
                }
                continue;
            }
            // All successors done: pop the frame, propagate lowlink to the parent.
            frames.pop();
            let node_low = lowlink.get(&node).copied().unwrap_or(usize::MAX);
            if let Some(parent) = frames.last() {
                if let Some(low) = lowlink.get_mut(&parent.0) {
                    *low = (*low).min(node_low);
                }
            }
            if Some(&node_low) == index_of.get(&node) {
                let mut scc = BTreeSet::new();
                while let Some(member) = stack.pop() {
                    on_stack.remove(&member);
                    scc.insert(member);
                    if member == node {
                        break;
                    }
                }
                sccs.push(scc);
            }
        }
    }
    sccs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cycle_and_ignores_the_tail() {
        let mut graph: Graph<u8> = Graph::new();
        graph.add_edge(0, 1, 0);
        graph.add_edge(1, 2, 0);
        graph.add_edge(2, 0, 1);
        graph.add_edge(2, 3, 0);
        let sccs = graph.nontrivial_sccs();
        assert_eq!(sccs, vec![BTreeSet::from([0, 1, 2])]);
        assert_eq!(graph.cycle_through(0), Some(vec![0, 1, 2]));
        assert_eq!(graph.cycle_through(3), None);
    }

    #[test]
    fn acyclic_graph_has_no_components() {
        let mut graph: Graph<u8> = Graph::new();
        for node in 0..100 {
            graph.add_edge(node, node + 1, 0);
        }
        assert!(graph.nontrivial_sccs().is_empty());
    }
}
