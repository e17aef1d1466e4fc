//! process setup
