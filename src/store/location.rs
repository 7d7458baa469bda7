//! Where the station's state lives: a SQLite file (the default) or a
//! PostgreSQL database several stations share (`--db postgres://…`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl Db {
    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Db::Sqlite(p) => Some(p),
            Db::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// A directory for files the station keeps beside its state (the TLS
    /// certificate): the SQLite file's directory, or the working directory
    /// for PostgreSQL.
    pub fn dir(&self) -> PathBuf {
        match self {
            Db::Sqlite(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            Db::Postgres(_) => PathBuf::from("."),
        }
    }
}

impl FromStr for Db {
    type Err = String;

    fn from_str(s: &str) -> Result<Db, String> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            s.parse::<postgres::Config>()
                .map_err(|e| format!("{}: not a PostgreSQL URL: {e}", shown(s)))?;
            Ok(Db::Postgres(s.to_string()))
        } else if s.is_empty() {
            Err("the database path is empty".into())
        } else {
            Ok(Db::Sqlite(PathBuf::from(s)))
        }
    }
}

/// A URL as it may be shown and logged: any password replaced by `***`.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(a) = auth {
        match a.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:***@")),
            None => out.push_str(&format!("{a}@")),
        }
    }
    // A password may also come as a query parameter.
    match host.split_once('?') {
        Some((h, q)) => {
            out.push_str(h);
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            out.push('?');
            out.push_str(&q.join("&"));
        }
        None => out.push_str(host),
    }
    out
}

impl fmt::Display for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Db::Sqlite(p) => write!(f, "{}", p.display()),
            Db::Postgres(url) => f.write_str(&shown(url)),
        }
    }
}

impl From<&Path> for Db {
    fn from(p: &Path) -> Db {
        Db::Sqlite(p.to_path_buf())
    }
}
impl From<&PathBuf> for Db {
    fn from(p: &PathBuf) -> Db {
        Db::Sqlite(p.clone())
    }
}
impl From<PathBuf> for Db {
    fn from(p: PathBuf) -> Db {
        Db::Sqlite(p)
    }
}
impl From<&Db> for Db {
    fn from(d: &Db) -> Db {
        d.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_selects_postgres_and_never_shows_its_password() {
        let d: Db = "postgres://station:s3cret@db.lan:5432/wh?sslmode=disable"
            .parse()
            .unwrap();
        assert!(d.is_postgres());
        assert_eq!(
            d.to_string(),
            "postgres://station:***@db.lan:5432/wh?sslmode=disable"
        );
        let q: Db = "postgresql://db.lan/wh?user=a&password=s3cret"
            .parse()
            .unwrap();
        assert!(!q.to_string().contains("s3cret"), "{q}");
        let f: Db = "data/station.db".parse().unwrap();
        assert_eq!(f.sqlite_path(), Some(Path::new("data/station.db")));
        assert_eq!(f.dir(), PathBuf::from("data"));
        assert!("postgres://db.lan:notaport/wh".parse::<Db>().is_err());
    }
}
