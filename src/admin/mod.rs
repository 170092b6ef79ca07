//! admin (skeleton).
