//! A SQLite file per tenant, in one directory.
//!
//! File names: `tenant-<escaped id>.sqlite`, where the escape keeps lowercase letters, digits
//! and `-`, and writes an uppercase letter as `_` and its lowercase (`A` -> `_a`), `_` as `__`
//! and `.` as `_.`. The escape is injective and prefix-free, its output has no uppercase
//! letters (so ids differing only in case get different files on case-insensitive file
//! systems too), and the prefix and suffix keep `.`/`..` and other special names out of reach.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use smsys_core::{TenantId, TenantStore, Tenants};

use super::{OpenError, SqliteEventStore, SqliteOptions};
use crate::tenancy::OpenStores;

const PREFIX: &str = "tenant-";
const SUFFIX: &str = ".sqlite";

/// Longest tenant file name, in bytes (file systems allow 255; SQLite adds `-wal`,
/// `-shm` and `-journal`).
pub const MAX_TENANT_FILE_NAME_LEN: usize = 200;

/// Why [`SqliteTenants`] could not open a tenant's store or list the tenants.
#[derive(Debug, thiserror::Error)]
pub enum SqliteTenantsError {
    /// The tenant id escapes to a file name longer than [`MAX_TENANT_FILE_NAME_LEN`].
    #[error(
        "tenant id {tenant} is too long for a file name: its file name would have {len} bytes, at most {max} are allowed"
    )]
    IdTooLong {
        /// The tenant.
        tenant: TenantId,
        /// The length of its file name.
        len: usize,
        /// The longest file name allowed.
        max: usize,
    },
    /// The tenants' directory could not be created or read.
    #[error("cannot use the tenant directory {}", dir.display())]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A tenant's store file could not be opened.
    #[error("cannot open the store of tenant {tenant}")]
    Open {
        /// The tenant.
        tenant: TenantId,
        /// Why.
        #[source]
        source: OpenError,
    },
}

/// Tenants on SQLite: one store file per tenant in a directory, opened on first use and
/// shared by every handle of the tenant afterwards. Opening a tenant waits for no other
/// tenant's open; concurrent opens of one tenant share one store.
///
/// Each open tenant costs a file, its write-ahead log, a writer thread and its read
/// connections ([`SqliteOptions::read_connections`]); the options given are used for every
/// tenant's file. [`Tenants::tenants`] lists the tenant files in the directory (only names
/// this type makes; other files are ignored).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use smsys_core::{TenantId, Tenants};
/// use smsys_store::{SqliteOptions, SqliteTenants};
///
/// let dir = tempfile::tempdir()?;
/// let tenants = SqliteTenants::open(dir.path(), SqliteOptions::new("ignored"))?;
/// let acme = tenants.tenant(&TenantId::new("Acme")?).await?;
/// assert!(acme.store().path().ends_with("tenant-_acme.sqlite"));
/// assert_eq!(tenants.tenants().await?, vec![TenantId::new("Acme")?]);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SqliteTenants {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    options: SqliteOptions,
    stores: OpenStores<SqliteEventStore>,
}

impl SqliteTenants {
    /// Tenants in `dir` (created if missing), each file opened with `options` (whose path is
    /// replaced by the tenant's file).
    pub fn open(
        dir: impl Into<PathBuf>,
        options: SqliteOptions,
    ) -> Result<Self, SqliteTenantsError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| SqliteTenantsError::Directory {
            dir: dir.clone(),
            source,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                options,
                stores: OpenStores::new(),
            }),
        })
    }

    /// The directory holding the tenants' files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Closes every open tenant's store (see [`SqliteEventStore::close`]), after the opens
    /// under way finished; handles already given out fail afterwards, and the next
    /// [`Tenants::tenant`] opens the file again.
    pub async fn close(&self) {
        for store in self.inner.stores.drain().await {
            store.close().await;
        }
    }

    /// Opens `tenant`'s file.
    async fn open_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<SqliteEventStore>, SqliteTenantsError> {
        let name = file_name(tenant);
        if name.len() > MAX_TENANT_FILE_NAME_LEN {
            return Err(SqliteTenantsError::IdTooLong {
                tenant: tenant.clone(),
                len: name.len(),
                max: MAX_TENANT_FILE_NAME_LEN,
            });
        }
        let mut options = self.inner.options.clone();
        options.path = self.inner.dir.join(&name);
        let store = options
            .open()
            .await
            .map_err(|source| SqliteTenantsError::Open {
                tenant: tenant.clone(),
                source,
            })?;
        tracing::debug!(%tenant, file = %name, "tenant store open");
        Ok(Arc::new(store))
    }
}

#[async_trait]
impl Tenants for SqliteTenants {
    type Store = SqliteEventStore;
    type Error = SqliteTenantsError;

    async fn tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<TenantStore<SqliteEventStore>, SqliteTenantsError> {
        let store = self
            .inner
            .stores
            .get_or_open(tenant, || self.open_tenant(tenant))
            .await?;
        Ok(TenantStore::new(tenant.clone(), store))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, SqliteTenantsError> {
        let dir = self.inner.dir.clone();
        let listed = tokio::task::spawn_blocking(move || list(&dir)).await;
        match listed {
            Ok(listed) => listed,
            Err(join) => Err(SqliteTenantsError::Directory {
                dir: self.inner.dir.clone(),
                source: std::io::Error::other(join),
            }),
        }
    }
}

/// The tenants whose files are in `dir`, sorted.
fn list(dir: &Path) -> Result<Vec<TenantId>, SqliteTenantsError> {
    let failed = |source| SqliteTenantsError::Directory {
        dir: dir.to_owned(),
        source,
    };
    let mut tenants = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(tenant) = tenant_of(&name) else {
            continue;
        };
        if entry.file_type().map_err(failed)?.is_dir() {
            continue;
        }
        tenants.push(tenant);
    }
    tenants.sort();
    Ok(tenants)
}

/// The file name of `tenant`'s store.
fn file_name(tenant: &TenantId) -> String {
    let mut name = String::with_capacity(PREFIX.len() + tenant.as_str().len() + SUFFIX.len());
    name.push_str(PREFIX);
    for c in tenant.as_str().chars() {
        match c {
            'a'..='z' | '0'..='9' | '-' => name.push(c),
            'A'..='Z' => {
                name.push('_');
                name.push(c.to_ascii_lowercase());
            }
            '_' => name.push_str("__"),
            other => {
                name.push('_');
                name.push(other);
            }
        }
    }
    name.push_str(SUFFIX);
    name
}

/// The tenant whose store file is named `name`, if it is a name [`file_name`] makes.
fn tenant_of(name: &str) -> Option<TenantId> {
    let escaped = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let mut id = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            'a'..='z' | '0'..='9' | '-' => id.push(c),
            '_' => match chars.next()? {
                lower @ 'a'..='z' => id.push(lower.to_ascii_uppercase()),
                '_' => id.push('_'),
                '.' => id.push('.'),
                _ => return None,
            },
            _ => return None,
        }
    }
    let tenant = TenantId::new(id).ok()?;
    (file_name(&tenant) == name).then_some(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    #[test]
    fn file_names_are_injective_lowercase_and_round_trip() {
        let ids = [
            "acme", "Acme", "ACME", "a_b", "a.b", "a-b", "_", "__", ".", "..", "a_.b", "A.", "x9",
        ];
        let mut names = std::collections::HashSet::new();
        for id in ids {
            let name = file_name(&tenant(id));
            assert!(!name.chars().any(|c| c.is_ascii_uppercase()), "{name}");
            assert!(!name.contains('/') && !name.contains('\\'), "{name}");
            assert!(names.insert(name.clone()), "{id} collides as {name}");
            assert_eq!(tenant_of(&name), Some(tenant(id)), "{name}");
        }
        assert_eq!(file_name(&tenant("..")), "tenant-_._..sqlite");
    }

    #[test]
    fn names_this_module_does_not_make_are_no_tenants() {
        for name in [
            "tenant-.sqlite",
            "tenant-A.sqlite",
            "tenant-_x.sqlite-wal",
            "tenant-a_1.sqlite",
            "tenant-a_.sqlite",
            "other.sqlite",
            "tenant-a.sqlite.bak",
        ] {
            assert_eq!(tenant_of(name), None, "{name}");
        }
    }
}
