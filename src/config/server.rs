//! `[server]`: where `lethe serve` listens, and the API tokens it accepts,
//! each stored as a SHA-256 hash with a role.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"
//!
//! [[server.token]]
//! name = "withdrawal-flow"       # shown in logs and on requests it submits
//! role = "submit"                # submit | operate | audit
//! sha256 = "9f86d0818..."        # `lethe token new` prints a token and this line
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ConfigError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submit erasures, and read the requests this token submitted.
    Submit,
    /// Everything but reading destruction records: the queue, any request,
    /// submit, retry, cancel, metrics.
    Operate,
    /// Read only: the queue, any request, destruction records, the register,
    /// metrics.
    Audit,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Submit => "submit",
            Role::Operate => "operate",
            Role::Audit => "audit",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "submit" => Some(Role::Submit),
            "operate" => Some(Role::Operate),
            "audit" => Some(Role::Audit),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One API token, as the configuration keeps it: never the token itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Who holds it (a system or a person): logged, and kept on the
    /// requests it submits.
    pub name: String,
    pub role: Role,
    /// The token's SHA-256, 64 hex digits (`lethe token new` prints it).
    pub sha256: String,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The address `lethe serve` binds: loopback by default. Put TLS in
    /// front of it with a reverse proxy before exposing it to a network.
    pub listen: String,
    /// The accepted API tokens (`[[server.token]]`).
    #[serde(rename = "token")]
    pub tokens: Vec<TokenSpec>,
    /// How long a browser session lasts after signing in, in minutes.
    pub session_minutes: u64,
    /// The time zone the pages show times in (an IANA name such as
    /// `Asia/Seoul`). Records, the register's CSV and the API stay in UTC.
    pub time_zone: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            tokens: Vec::new(),
            session_minutes: 480,
            time_zone: "UTC".into(),
        }
    }
}

/// A token's hash as `[[server.token]] sha256` holds it.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl ServerSettings {
    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.listen = {:?} is not an address such as 127.0.0.1:8080",
                self.listen
            ))
        })
    }

    /// The pages' time zone, parsed.
    pub fn zone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.time_zone.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.time_zone = {:?} is not an IANA time zone such as \"Asia/Seoul\" or \"UTC\"",
                self.time_zone
            ))
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.zone()?;
        if self.session_minutes == 0 {
            return Err(ConfigError::Invalid(
                "server.session_minutes must be at least 1".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for token in &self.tokens {
            if token.name.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "a [[server.token]] has an empty name: name each token after who holds it"
                        .into(),
                ));
            }
            if !names.insert(token.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "two [[server.token]] entries are named {:?}: names must be unique",
                    token.name
                )));
            }
            let hex =
                token.sha256.len() == 64 && token.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex {
                return Err(ConfigError::Invalid(format!(
                    "[[server.token]] {:?}: sha256 must be the token's SHA-256 as 64 hex digits \
                     (not the token itself); `lethe token new` prints a token and its line",
                    token.name
                )));
            }
            if !hashes.insert(token.sha256.to_ascii_lowercase()) {
                return Err(ConfigError::Invalid(format!(
                    "[[server.token]] {:?} has the same token as another entry: give each holder its own",
                    token.name
                )));
            }
        }
        Ok(())
    }
}
