//! The demo's folder (`./lethe-demo/` by default): the SQLite database, the
//! S3 server's objects, the catalog, and a `lethe.toml` that points at all
//! three, so that `lethe --config lethe-demo/lethe.toml <command>` works on
//! them after the demo. The rule it keeps: it only ever replaces a folder
//! that an earlier demo made (it carries [`MARKER`] in its `lethe.toml`).

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::catalog_files;
use super::s3_server::{ACCESS_KEY, SECRET_KEY};
use crate::config::{Config, ConfigError};
use crate::error::Error;

/// The first line of the demo's `lethe.toml`.
const MARKER: &str = "# Written by `lethe demo`.";

/// The port the demo's S3 server asks for first, so that its address in
/// `lethe.toml` usually stays the same from one run to the next.
pub const PREFERRED_PORT: u16 = 9753;

/// The demo's folder, as an absolute path.
#[derive(Debug, Clone)]
pub struct Folder {
    pub root: PathBuf,
}

impl Folder {
    pub fn new(dir: &Path) -> Result<Folder, Error> {
        let root = std::path::absolute(dir).map_err(|source| Error::Io {
            doing: format!("resolving the demo folder {}", dir.display()),
            source,
        })?;
        Ok(Folder { root })
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("lethe.sqlite3")
    }

    pub fn s3(&self) -> PathBuf {
        self.root.join("s3")
    }

    pub fn catalog(&self) -> PathBuf {
        self.root.join("catalog")
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("lethe.toml")
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.database().display())
    }

    /// Empties the folder of an earlier demo (or creates it), refusing a
    /// folder that is not one.
    pub fn prepare(&self) -> Result<(), Error> {
        if self.root.exists() {
            let made_by_demo = std::fs::read_to_string(self.config_file())
                .is_ok_and(|text| text.starts_with(MARKER));
            let empty = std::fs::read_dir(&self.root)
                .map(|mut entries| entries.next().is_none())
                .unwrap_or(false);
            if !made_by_demo && !empty {
                return Err(Error::Demo(format!(
                    "{} exists and was not made by `lethe demo`; remove it or pass --dir",
                    self.root.display()
                )));
            }
            for name in ["lethe.sqlite3", "lethe.sqlite3-wal", "lethe.sqlite3-shm"] {
                remove(&self.root.join(name), false)?;
            }
            for dir in [self.s3(), self.catalog()] {
                remove(&dir, true)?;
            }
        }
        std::fs::create_dir_all(self.catalog().join("features")).map_err(|source| Error::Io {
            doing: format!("creating {}", self.root.display()),
            source,
        })?;
        for (path, text) in catalog_files::FILES {
            let target = self.catalog().join(path);
            std::fs::write(&target, text).map_err(|source| Error::Io {
                doing: format!("writing {}", target.display()),
                source,
            })?;
        }
        Ok(())
    }

    /// Writes `lethe.toml` for an S3 server on `port` and returns it as a
    /// configuration (the file's own, without environment overrides).
    pub fn write_config(&self, port: u16) -> Result<Config, Error> {
        // A fresh HMAC key per demo, as an operator would make one.
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        // Tokens for trying `lethe serve` on the demo's files. A real
        // deployment keeps only the hashes (`lethe token new` prints both).
        let operator = format!("demo-operate-{}", Uuid::new_v4().simple());
        let auditor = format!("demo-audit-{}", Uuid::new_v4().simple());
        let text = format!(
            r#"{MARKER} It points at the demo's files; use it with
# `lethe --config <this file> <command>`. A real deployment's lethe.toml is
# the same shape: see the README, "Pointing lethe at a real PostgreSQL and
# AWS S3".

# The SQLite file that holds the example service's tables and lethe's.
database_url = {database_url}
# Where the example service's data lives (a copy of workflows/example).
catalog = {catalog}

# The demo's S3-protocol server (s3s-fs; objects in s3/ beside this file).
# It runs while `lethe demo` runs; `lethe demo --serve` runs it again.
[s3]
endpoint_url = "http://127.0.0.1:{port}"
region = "us-east-1"
force_path_style = true
access_key_id = "{ACCESS_KEY}"
secret_access_key = "{SECRET_KEY}"

[worker]
# Small batches, so that every phase takes several and the checkpoints show
# (the default is 500 member requests a batch).
batch_size = 10
delete_batch_size = 40
# A killed worker's lease expires after this (`lethe demo --crash`).
lease_secs = 5
# The load limits and the pause between batches keep their defaults:
# 200 objects/s, 1,000 rows/s, 200 ms.

[minimisation]
# The HMAC key that replaces a member's key in lethe's tables after Done.
# Made for this demo; a real one is made once (openssl rand -hex 32) and kept.
subject_hash_secret = "{secret}"

# `lethe --config <this file> serve`: the HTTP API and the pages, at
# http://127.0.0.1:8080/. Sign in with one of these tokens. They are written
# here only because this is a demo: a real lethe.toml holds only each
# token's SHA-256 (`lethe token new` makes a token and its lines).
[server]
listen = "127.0.0.1:8080"
# The pages show times in this zone (records and the API stay in UTC).
time_zone = "Asia/Seoul"

# token: {operator}
[[server.token]]
name = "demo-operator"
role = "operate"
sha256 = "{operator_hash}"

# token: {auditor}
[[server.token]]
name = "demo-auditor"
role = "audit"
sha256 = "{auditor_hash}"
"#,
            operator_hash = crate::config::token_sha256(&operator),
            auditor_hash = crate::config::token_sha256(&auditor),
            database_url = toml_string(&self.database_url()),
            catalog = toml_string(&self.catalog().display().to_string()),
        );
        let path = self.config_file();
        write_private(&path, &text).map_err(|source| Error::Io {
            doing: format!("writing {}", path.display()),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.clone(),
            message: err.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration an earlier demo left (for `lethe demo --serve`).
    pub fn read_config(&self) -> Result<Config, Error> {
        let path = self.config_file();
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            doing: format!("reading {} (run `lethe demo` first)", path.display()),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.clone(),
            message: err.to_string(),
        })?;
        Ok(config)
    }
}

/// A TOML string literal (quoted and escaped: paths may hold anything).
/// Writes a file only its owner can read: it holds a secret (the hash key,
/// the S3 keys). An existing file (an earlier demo's) is made private too.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn remove(path: &Path, dir: bool) -> Result<(), Error> {
    let result = if dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            doing: format!("removing {} (from an earlier demo)", path.display()),
            source,
        }),
    }
}
