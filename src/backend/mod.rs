//! backend (skeleton).
