//! Checkpoint names: what a projection's or a record index's checkpoint is kept under; and
//! the filter a checkpoint is bound to (see
//! [`CheckpointStore::load_checkpoint_for`](smsys_core::CheckpointStore::load_checkpoint_for)).

use std::fmt;

use smsys_core::{BackendError, FilterMismatch, LogFilter, StoreError};

/// Longest checkpoint name accepted, in bytes.
pub const MAX_CHECKPOINT_NAME_LEN: usize = 256;

/// The name a checkpoint is kept under, e.g. `mail-notifier` or `record_index.v1`: 1 to
/// [`MAX_CHECKPOINT_NAME_LEN`] bytes, no control characters.
///
/// ```
/// use smsys_store::CheckpointName;
/// assert!(CheckpointName::new("record_index.v1").is_ok());
/// assert!(CheckpointName::new("").is_err());
/// assert!(CheckpointName::new("a\nb").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointName(String);

/// A name refused as a checkpoint name.
///
/// The stores' [`CheckpointStore`](smsys_core::CheckpointStore) and record index methods take
/// names as text and report a refused one as a [`StoreError::Backend`] that is not transient,
/// whose source is this error (see [`CheckpointNameError::into_store_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointNameError {
    /// The name is empty.
    #[error("a checkpoint name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_CHECKPOINT_NAME_LEN`] bytes.
    #[error("checkpoint name of {len} bytes is longer than {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
    /// The name holds a control character.
    #[error("checkpoint name {name:?} holds a control character")]
    ControlCharacter {
        /// The name.
        name: String,
    },
}

impl CheckpointNameError {
    /// The store error a backend returns for this refusal: a [`StoreError::Backend`] of
    /// `backend` and `operation`, not transient (retrying cannot help), with this error as
    /// its source.
    pub fn into_store_error(self, backend: &'static str, operation: &'static str) -> StoreError {
        StoreError::Backend(BackendError::new(backend, operation, false, self))
    }
}

impl CheckpointName {
    /// Validates a name.
    pub fn new(name: impl Into<String>) -> Result<Self, CheckpointNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(CheckpointNameError::Empty);
        }
        if name.len() > MAX_CHECKPOINT_NAME_LEN {
            return Err(CheckpointNameError::TooLong {
                len: name.len(),
                max: MAX_CHECKPOINT_NAME_LEN,
            });
        }
        if name.chars().any(char::is_control) {
            return Err(CheckpointNameError::ControlCharacter { name });
        }
        Ok(Self(name))
    }

    /// Validates `name` for `operation` of `backend`, as the stores do for names given as text.
    pub(crate) fn check(
        name: &str,
        backend: &'static str,
        operation: &'static str,
    ) -> Result<Self, StoreError> {
        Self::new(name).map_err(|e| e.into_store_error(backend, operation))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for CheckpointName {
    type Err = CheckpointNameError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
    }
}

impl TryFrom<&str> for CheckpointName {
    type Error = CheckpointNameError;
    fn try_from(name: &str) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl AsRef<str> for CheckpointName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckpointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text a filter is kept as beside a checkpoint: its canonical form as JSON.
pub(crate) fn filter_text(filter: &LogFilter) -> String {
    // A LogFilter is lists of validated names: serializing it cannot fail.
    serde_json::to_string(&filter.canonical()).unwrap_or_default()
}

/// What a checkpoint's kept filter says about a reader of `requested`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The checkpoint is bound to `requested` already.
    Bound,
    /// Nothing is bound yet: bind `requested`.
    Unbound,
}

/// Compares the filter kept with checkpoint `name` (its text, `None` when none is kept) with
/// the filter of the reader asking; another filter is [`StoreError::CheckpointFilter`], a
/// kept text that is no filter is [`StoreError::Corrupt`].
pub(crate) fn check_binding(
    name: &CheckpointName,
    kept: Option<&str>,
    requested: &LogFilter,
) -> Result<Binding, StoreError> {
    let Some(kept) = kept else {
        return Ok(Binding::Unbound);
    };
    let kept: LogFilter = serde_json::from_str(kept).map_err(|e| StoreError::Corrupt {
        what: format!("the filter kept with checkpoint {name}: {e}"),
    })?;
    let requested = requested.canonical();
    if kept.canonical() == requested {
        Ok(Binding::Bound)
    } else {
        Err(StoreError::CheckpointFilter(Box::new(FilterMismatch {
            name: name.to_string(),
            kept,
            requested,
        })))
    }
}

/// The checkpoint kept under `name` for a reader of `filter`, binding the name on first use:
/// the one flow of every backend that keeps bindings. `load` reads the kept position and the
/// kept filter text; `bind` binds the name to the filter text given unless it is bound already
/// (keeping a new name's checkpoint at the start). After binding it reads again, since another
/// handle or node may have bound it first; a name without a checkpoint still has none to
/// resume from.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn load_bound<L, Loaded, B, Bound>(
    name: &CheckpointName,
    filter: &LogFilter,
    load: L,
    bind: B,
) -> Result<Option<smsys_core::Position>, StoreError>
where
    L: Fn() -> Loaded,
    Loaded: std::future::Future<
            Output = Result<(Option<smsys_core::Position>, Option<String>), StoreError>,
        >,
    B: FnOnce(String) -> Bound,
    Bound: std::future::Future<Output = Result<(), StoreError>>,
{
    let (position, kept) = load().await?;
    if check_binding(name, kept.as_deref(), filter)? == Binding::Bound {
        return Ok(position);
    }
    bind(filter_text(filter)).await?;
    let (_, kept) = load().await?;
    match check_binding(name, kept.as_deref(), filter)? {
        Binding::Bound => Ok(position),
        Binding::Unbound => Err(StoreError::Corrupt {
            what: format!("checkpoint {name} was bound to a filter but reads back unbound"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsys_core::Category;

    #[test]
    fn a_checkpoint_serves_the_filter_it_is_bound_to_only() {
        let name = CheckpointName::new("notifier").unwrap();
        let incident = Category::new("incident").unwrap();
        let request = Category::new("request").unwrap();
        let both = LogFilter::all()
            .category(incident.clone())
            .category(request.clone());
        let kept = filter_text(&both);
        assert_eq!(check_binding(&name, None, &both).unwrap(), Binding::Unbound);
        let reordered = LogFilter::all()
            .category(request)
            .category(incident.clone());
        assert_eq!(
            check_binding(&name, Some(&kept), &reordered).unwrap(),
            Binding::Bound
        );
        let narrower = LogFilter::all().category(incident);
        let err = check_binding(&name, Some(&kept), &narrower).unwrap_err();
        assert!(
            matches!(&err, StoreError::CheckpointFilter(m)
                if m.name == "notifier" && m.kept == both.canonical() && m.requested == narrower),
            "{err}"
        );
        assert!(err.to_string().contains("new name"), "{err}");
        assert!(matches!(
            check_binding(&name, Some("{not json"), &both),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(CheckpointName::new("mail-notifier/v2 (eu) é").is_ok());
        assert!(CheckpointName::new("x".repeat(MAX_CHECKPOINT_NAME_LEN)).is_ok());
        assert_eq!(CheckpointName::new(""), Err(CheckpointNameError::Empty));
        assert!(matches!(
            CheckpointName::new("a\u{7f}b"),
            Err(CheckpointNameError::ControlCharacter { .. })
        ));
        assert_eq!(
            CheckpointName::new("x".repeat(MAX_CHECKPOINT_NAME_LEN + 1)),
            Err(CheckpointNameError::TooLong {
                len: MAX_CHECKPOINT_NAME_LEN + 1,
                max: MAX_CHECKPOINT_NAME_LEN
            })
        );
    }

    #[test]
    fn refusals_are_permanent_backend_errors_naming_the_reason() {
        let StoreError::Backend(e) =
            CheckpointName::check("a\tb", "memory", "save checkpoint").unwrap_err()
        else {
            panic!("a backend error");
        };
        assert!(!e.is_transient());
        assert_eq!(e.operation(), "save checkpoint");
        let source = std::error::Error::source(&e).unwrap();
        assert!(source.downcast_ref::<CheckpointNameError>().is_some());
    }
}
