//! frontend (skeleton).
