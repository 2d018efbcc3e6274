//! Simulated disk (placeholder until the sim disk lands in this same change).
