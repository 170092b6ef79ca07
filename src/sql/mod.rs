//! sql (skeleton).
