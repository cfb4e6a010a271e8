//! The sealer: records seals of one store's log, incrementally.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;

use super::{Digests, RecordedSeal, SealError, Walked, is_seal, seal_names, seal_stream, walk_log};
use crate::event::{Actor, EventData, EventId, Metadata};
use crate::store::{AppendError, EventStore, LogFilter};
use crate::stream::{ExpectedVersion, Position, Version};

/// Records seals of one store's log. Keeps the log's digests between seals, so each seal
/// after the first reads only the events since the one before.
pub struct Sealer {
    store: Arc<dyn EventStore>,
    actor: Actor,
    kept: Option<Kept>,
}

/// What a sealer keeps between seals.
struct Kept {
    digests: Digests,
    after: Position,
    /// The latest seal's version in the seal stream.
    version: Option<Version>,
    /// How many events the latest seal covers.
    sealed: Option<u64>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer of `store`'s log, recording seals as the actor `system:sealer`.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            actor: seal_names().1,
            kept: None,
        }
    }

    /// Records a seal covering the log as it is now, unless nothing was recorded since the
    /// last seal (then `None`). The first call walks and checks the whole log and its seals,
    /// and refuses to seal a log that does not verify ([`SealError::Broken`]).
    pub async fn seal(&mut self) -> Result<Option<RecordedSeal>, SealError> {
        let kept = match self.kept.take() {
            Some(kept) => kept,
            None => self.walk_all().await?,
        };
        let Kept {
            mut digests,
            mut after,
            version,
            sealed,
        } = kept;
        let mut log = self.store.read_all(after, LogFilter::all());
        while let Some(event) = log.next().await {
            let event = event?;
            if !is_seal(&event) {
                digests.add(&event);
            }
            after = event.position;
        }
        drop(log);
        if sealed == Some(digests.events) {
            self.kept = Some(Kept {
                digests,
                after,
                version,
                sealed,
            });
            return Ok(None);
        }
        let covers = digests.last.unwrap_or(Position::START);
        let seal = digests.seal(covers);
        let payload = serde_json::to_value(&seal)
            .map_err(|e| SealError::Broken(format!("seal does not encode: {e}")))?;
        let id = EventId::derived(&format!(
            "seal/{}/{}/{}",
            version.map_or(1, |v| v.get() + 1),
            covers.commit(),
            covers.sequence()
        ));
        let metadata = Metadata::new(id, self.actor.clone(), chrono::DateTime::UNIX_EPOCH);
        let data = EventData::new(seal_names().0, 1, payload, metadata)
            .map_err(|e| SealError::Broken(e.to_string()))?;
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let written = match self
            .store
            .append(&seal_stream(), expected, vec![data])
            .await
        {
            Ok(written) => written,
            Err(AppendError::Conflict { .. }) => return Err(SealError::Raced),
            Err(error) => return Err(SealError::Append(error)),
        };
        let mut recorded = self.store.read_stream(&seal_stream(), written.version);
        let Some(event) = recorded.next().await.transpose()? else {
            return Err(SealError::Broken(
                "the seal just recorded reads back as nothing".into(),
            ));
        };
        drop(recorded);
        let sealed = RecordedSeal {
            seal,
            version: event.version,
            position: event.position,
            hash: event.hash,
        };
        tracing::info!(covers = %sealed.seal.covers, events = sealed.seal.events,
            hash = %sealed.hash, "log sealed");
        self.kept = Some(Kept {
            digests,
            after,
            version: Some(written.version),
            sealed: Some(sealed.seal.events),
        });
        Ok(Some(sealed))
    }

    /// Walks the whole log, checking the chain and the seals recorded so far.
    async fn walk_all(&self) -> Result<Kept, SealError> {
        let Walked {
            report,
            digests,
            after,
            ..
        } = walk_log(&*self.store, &[]).await?;
        let problem = report
            .first_break
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| report.seal_failures.first().map(ToString::to_string));
        if let Some(problem) = problem {
            return Err(SealError::Broken(problem));
        }
        Ok(Kept {
            digests,
            after,
            version: report.latest_seal.as_ref().map(|l| l.version),
            sealed: report.latest_seal.map(|l| l.seal.events),
        })
    }
}
