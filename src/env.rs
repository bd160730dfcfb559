//! Names of the environment variables physio reads, in one place so that the CLI,
//! the library and the docs agree.

/// Environment variable names read by physio.
pub struct EnvVars;

impl EnvVars {
    /// Replaces `https://physionet.org` (mirrors, a local HTTP copy, a `file://` tree).
    pub const PHYSIO_BASE_URL: &'static str = "PHYSIO_BASE_URL";
    /// Replaces Kaggle's API base, `https://www.kaggle.com/api/v1`.
    pub const PHYSIO_KAGGLE_URL: &'static str = "PHYSIO_KAGGLE_URL";
    /// Log filter (tracing `EnvFilter` syntax); falls back to `RUST_LOG`.
    pub const PHYSIO_LOG: &'static str = "PHYSIO_LOG";
    /// PhysioNet user name for credentialed datasets.
    pub const PHYSIONET_USERNAME: &'static str = "PHYSIONET_USERNAME";
    /// PhysioNet password for credentialed datasets.
    pub const PHYSIONET_PASSWORD: &'static str = "PHYSIONET_PASSWORD";
    /// Kaggle API token (sent as a bearer token).
    pub const KAGGLE_API_TOKEN: &'static str = "KAGGLE_API_TOKEN";
    /// Kaggle user name (with [`Self::KAGGLE_KEY`]).
    pub const KAGGLE_USERNAME: &'static str = "KAGGLE_USERNAME";
    /// Kaggle API key (with [`Self::KAGGLE_USERNAME`]).
    pub const KAGGLE_KEY: &'static str = "KAGGLE_KEY";
    /// Folder holding `kaggle.json` (default `~/.kaggle`).
    pub const KAGGLE_CONFIG_DIR: &'static str = "KAGGLE_CONFIG_DIR";
    /// Path of the netrc file (default `~/.netrc`).
    pub const NETRC: &'static str = "NETRC";
}
