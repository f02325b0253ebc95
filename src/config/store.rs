//! `[store]`: where the store lives. sled in the state directory (the
//! default), or a PostgreSQL database shared by several nodes.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, PasswordSource, SourceFile};

/// `[store]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) backend: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) lease: Option<Spanned<String>>,
}

/// Which store a config uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreBackend {
    /// sled, embedded in the state directory: one process at a time.
    #[default]
    Sled,
    /// PostgreSQL, shared by every node that names it.
    Postgres(PostgresSettings),
}

/// How to reach the PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `postgresql://USER@HOST:PORT/DATABASE[?sslmode=require]`, without a
    /// password (validation refuses one).
    pub url: String,
    /// Where the password is read from, if the server asks for one.
    pub password: Option<PasswordSource>,
    /// How long a node's claim on a check or a briefing lasts: longer than
    /// the slowest check, and how long a dead node's work waits before
    /// another node takes it over.
    pub lease: Duration,
}

/// The default `[store] lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

impl PostgresSettings {
    /// Reads the password, naming the file or variable when it cannot.
    /// The password itself never appears in a message.
    pub fn read_password(&self) -> Result<Option<SecretString>, String> {
        match &self.password {
            None => Ok(None),
            Some(PasswordSource::File(path)) => std::fs::read_to_string(path)
                .map(|text| Some(SecretString::from(text.trim_end_matches(['\r', '\n']))))
                .map_err(|e| format!("[store] password_file {}: {e}", path.display())),
            Some(PasswordSource::Env(name)) => std::env::var(name)
                .map(|text| Some(SecretString::from(text)))
                .map_err(|_| format!("[store] password_env: ${name} is not set")),
        }
    }
}

pub(super) fn validate_store(
    file: &SourceFile,
    base: &Path,
    raw: &RawStore,
    errors: &mut Vec<ConfigError>,
) -> StoreBackend {
    let backend = raw
        .backend
        .as_ref()
        .map_or("sled", |b| b.get_ref().as_str());
    let mut push = |span: Option<std::ops::Range<usize>>, field: &str, message: String| {
        errors.push(file.error(span.as_ref(), format!("store.{field}"), message));
    };
    match backend {
        "sled" => {
            for (field, value) in [
                ("url", &raw.url),
                ("password_file", &raw.password_file),
                ("password_env", &raw.password_env),
                ("lease", &raw.lease),
            ] {
                if let Some(value) = value {
                    push(
                        Some(value.span()),
                        field,
                        "only applies with backend = \"postgres\"".to_owned(),
                    );
                }
            }
            StoreBackend::Sled
        }
        "postgres" => {
            let Some(url) = &raw.url else {
                push(
                    raw.backend.as_ref().map(Spanned::span),
                    "url",
                    "backend = \"postgres\" needs url = \"postgresql://USER@HOST:5432/DATABASE\""
                        .to_owned(),
                );
                return StoreBackend::Sled;
            };
            match url::Url::parse(url.get_ref()) {
                Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {
                    if parsed.password().is_some() {
                        push(
                            Some(url.span()),
                            "url",
                            "holds a password; put it in password_file or password_env so the config can be shared and logged".to_owned(),
                        );
                    }
                    if parsed.host_str().is_none_or(str::is_empty) {
                        push(
                            Some(url.span()),
                            "url",
                            "names no host: write postgresql://USER@HOST:5432/DATABASE".to_owned(),
                        );
                    }
                }
                Ok(parsed) => push(
                    Some(url.span()),
                    "url",
                    format!(
                        "scheme `{}` is not PostgreSQL's: write postgresql://USER@HOST:5432/DATABASE",
                        parsed.scheme()
                    ),
                ),
                Err(e) => push(
                    Some(url.span()),
                    "url",
                    format!("is not a URL ({e}): write postgresql://USER@HOST:5432/DATABASE"),
                ),
            }
            let password = match (&raw.password_file, &raw.password_env) {
                (Some(path), None) => Some(PasswordSource::File(base.join(path.get_ref()))),
                (None, Some(env)) => Some(PasswordSource::Env(env.get_ref().clone())),
                (None, None) => None,
                (Some(_), Some(env)) => {
                    push(
                        Some(env.span()),
                        "password_env",
                        "give password_file or password_env, not both".to_owned(),
                    );
                    None
                }
            };
            let lease = match &raw.lease {
                None => DEFAULT_LEASE,
                Some(text) => match super::bounded_duration(
                    text.get_ref(),
                    Duration::from_secs(2),
                    Duration::from_secs(3600),
                ) {
                    Ok(lease) => lease,
                    Err(message) => {
                        push(Some(text.span()), "lease", message);
                        DEFAULT_LEASE
                    }
                },
            };
            StoreBackend::Postgres(PostgresSettings {
                url: url.get_ref().clone(),
                password,
                lease,
            })
        }
        other => {
            push(
                raw.backend.as_ref().map(Spanned::span),
                "backend",
                format!(
                    "`{other}` is not a store backend: use \"sled\" (the default) or \"postgres\""
                ),
            );
            StoreBackend::Sled
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{Config, load};

    fn load_text(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path: PathBuf = dir.path().join("tidings.toml");
        std::fs::write(&path, text).expect("write");
        load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn sled_is_the_default_and_postgres_needs_a_url() {
        let config = load_text("").expect("loads");
        assert_eq!(config.store, super::StoreBackend::Sled);
        let err = load_text("[store]\nbackend = \"postgres\"\n").expect_err("no url");
        assert!(err.contains("store.url"), "{err}");
        let err = load_text("[store]\nbackend = \"mysql\"\n").expect_err("bad backend");
        assert!(
            err.contains("store.backend") && err.contains("postgres"),
            "{err}"
        );
        let err = load_text("[store]\nurl = \"postgresql://a@b/c\"\n").expect_err("sled url");
        assert!(err.contains("only applies"), "{err}");
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_files_are_resolved_beside_the_config() {
        let err =
            load_text("[store]\nbackend = \"postgres\"\nurl = \"postgresql://a:secret@b/c\"\n")
                .expect_err("password");
        assert!(err.contains("password_file"), "{err}");
        assert!(!err.contains("secret"), "the password is echoed: {err}");
        let config = load_text(
            "[store]\nbackend = \"postgres\"\nurl = \"postgresql://tidings@db.example.org/tidings\"\npassword_file = \"db-password\"\n",
        )
        .expect("loads");
        let super::StoreBackend::Postgres(settings) = config.store else {
            panic!("not postgres");
        };
        let Some(super::PasswordSource::File(path)) = &settings.password else {
            panic!("no password file");
        };
        assert!(path.ends_with("db-password"));
        let err = settings.read_password().expect_err("missing file");
        assert!(err.contains("db-password"), "{err}");
    }
}
