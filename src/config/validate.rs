//! Turning a parsed [`super::schema::ConfigFile`] into a validated [`super::Config`].
//! (Skeleton: the config helper fills this in.)

use super::Config;

/// A configuration that cannot be used. The message names the key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

/// Parse and validate a config file's text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let _ = text;
    Err(ConfigError::Parse("not implemented".into()))
}

/// Read, parse and validate a config file.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}
