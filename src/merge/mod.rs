//! merge (skeleton).
