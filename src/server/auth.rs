//! Who is calling: an API token (bearer) or a browser session made by
//! signing in with one, and what its role lets it do.
//!
//! Tokens are kept as SHA-256 hashes ([`crate::config::TokenSpec`]); a
//! presented token is hashed and compared with every configured hash in
//! constant time, so neither the comparison nor which entry matched shows in
//! the timing. Tokens are never logged: a caller is named by its token's
//! name. Sessions live in this process's memory (a restart signs everyone
//! out); each has its own CSRF token, which every form that changes
//! something must send back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::config::{Role, TokenSpec};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name from the configuration.
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Whether this caller's role is one of `roles`.
    pub fn is(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

/// The configured tokens, by hash.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
}

impl Tokens {
    /// From `[[server.token]]` (already validated: 64 hex digits each).
    pub fn new(specs: &[TokenSpec]) -> Tokens {
        let entries = specs
            .iter()
            .filter_map(|spec| {
                let hash = decode_hex(&spec.sha256)?;
                Some((
                    hash,
                    Caller {
                        name: spec.name.clone(),
                        role: spec.role,
                    },
                ))
            })
            .collect();
        Tokens { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller a presented token belongs to. Every entry is compared,
    /// whatever matched first.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (hash, caller) in &self.entries {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(caller.clone());
            }
        }
        found
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[index] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// A random secret for a session id, a CSRF token or an API token: two
/// version-4 UUIDs (244 random bits from the operating system), as hex.
pub fn random_secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// Forms that change something must carry it back.
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// Whether a form's CSRF field is this session's, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.len() == presented.len()
            && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// Sessions of this process, by the id their cookie carries.
#[derive(Debug)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    lifetime: Duration,
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lethe_session";

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            by_id: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Opens a session for `caller`; returns its id (for the cookie).
    pub fn open(&self, caller: Caller) -> String {
        let id = random_secret();
        let now = Instant::now();
        let session = Session {
            caller,
            csrf: random_secret(),
            expires: now + self.lifetime,
        };
        let mut sessions = self.by_id.lock().expect("sessions lock");
        sessions.retain(|_, session| session.expires > now);
        sessions.insert(id.clone(), session);
        id
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let sessions = self.by_id.lock().expect("sessions lock");
        sessions
            .get(id)
            .filter(|session| session.expires > Instant::now())
            .cloned()
    }

    pub fn close(&self, id: &str) {
        self.by_id.lock().expect("sessions lock").remove(id);
    }
}

/// The value of one cookie in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::token_sha256;

    fn tokens() -> Tokens {
        Tokens::new(&[
            TokenSpec {
                name: "flow".into(),
                role: Role::Submit,
                sha256: token_sha256("secret-one"),
            },
            TokenSpec {
                name: "auditor".into(),
                role: Role::Audit,
                sha256: token_sha256("secret-two").to_ascii_uppercase(),
            },
        ])
    }

    #[test]
    fn a_token_is_known_by_its_hash_only() {
        let tokens = tokens();
        assert_eq!(tokens.authenticate("secret-one").unwrap().name, "flow");
        let auditor = tokens.authenticate("secret-two").unwrap();
        assert_eq!(
            (auditor.name.as_str(), auditor.role),
            ("auditor", Role::Audit)
        );
        assert_eq!(tokens.authenticate("secret-on"), None);
        assert_eq!(tokens.authenticate(""), None);
        assert_eq!(tokens.authenticate(&token_sha256("secret-one")), None);
    }

    #[test]
    fn sessions_expire_and_close() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let caller = Caller {
            name: "op".into(),
            role: Role::Operate,
        };
        let id = sessions.open(caller.clone());
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.caller, caller);
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("nope"));
        assert!(sessions.get("other").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&id).is_none());
        let id = sessions.open(caller);
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_are_read_by_name() {
        let header = "a=1; lethe_session=abc; lang=ko";
        assert_eq!(cookie(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(header, "lang"), Some("ko"));
        assert_eq!(cookie(header, "x"), None);
    }
}
