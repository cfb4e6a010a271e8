//! The record index's query semantics, shared by every backend: which rows a query selects,
//! the sort key of each order, and the cursor that carries a key from one page to the next.
//!
//! Instants are compared at whole microseconds ([`to_micros`]), the precision every store
//! keeps: two rows logged within the same microsecond tie on `logged_at` and are ordered by
//! their stream, on every backend. The rows themselves are stored and read back exactly.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use smsys_core::records::{Cursor, RecordOrder, RecordPage, RecordQuery, RecordRow};
use smsys_core::{BackendError, StoreError, StreamId, to_micros};

/// Why a query's cursor was refused.
///
/// The stores report it as a [`StoreError::Backend`] that is not transient, with this error
/// as its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// The cursor comes from a query of another order.
    #[error("the cursor belongs to order {cursor}, the query is in order {query}")]
    OtherOrder {
        /// The cursor's order.
        cursor: &'static str,
        /// The query's order.
        query: &'static str,
    },
    /// The cursor's key is not a key of its order (it was not made by a store).
    #[error("cursor key {key:?} is not a key of order {order}")]
    BadKey {
        /// The order.
        order: &'static str,
        /// The key.
        key: String,
    },
}

impl CursorError {
    pub(crate) fn into_store_error(self, backend: &'static str) -> StoreError {
        StoreError::Backend(BackendError::new(
            backend,
            "record index query",
            false,
            self,
        ))
    }
}

/// The name of an order, as it is serialized.
pub(crate) fn order_name(order: RecordOrder) -> &'static str {
    match order {
        RecordOrder::LoggedDesc => "logged_desc",
        RecordOrder::LoggedAsc => "logged_asc",
        RecordOrder::Priority => "priority",
        RecordOrder::Due => "due",
    }
}

/// An instant in whole microseconds since the epoch.
pub(crate) fn micros(instant: DateTime<Utc>) -> i64 {
    to_micros(instant).timestamp_micros()
}

/// The sort value of a row without a priority: after priority 5.
pub(crate) const NO_PRIORITY: i64 = 6;

/// The sort value of a row without a due instant: after every instant (chrono's last instant
/// is far below it).
pub(crate) const NO_DUE: i64 = i64::MAX;

/// A row's priority as a sort value.
pub(crate) fn priority_value(row: &RecordRow) -> i64 {
    row.priority.map_or(NO_PRIORITY, |p| i64::from(p.get()))
}

/// A row's earliest due instant as a sort value.
pub(crate) fn due_value(row: &RecordRow) -> i64 {
    row.earliest_due().map_or(NO_DUE, micros)
}

/// The values of a row that queries compare, computed once per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keys {
    /// `logged_at` in microseconds.
    pub(crate) logged: i64,
    /// The priority, [`NO_PRIORITY`] when none.
    pub(crate) priority: i64,
    /// The earliest due instant in microseconds, [`NO_DUE`] when none.
    pub(crate) due: i64,
}

impl Keys {
    pub(crate) fn of(row: &RecordRow) -> Self {
        Self {
            logged: micros(row.logged_at),
            priority: priority_value(row),
            due: due_value(row),
        }
    }

    /// The sort key in `order`.
    pub(crate) fn sort_key(self, order: RecordOrder) -> SortKey {
        match order {
            RecordOrder::LoggedDesc | RecordOrder::LoggedAsc => SortKey(self.logged, 0),
            RecordOrder::Priority => SortKey(self.priority, self.logged),
            RecordOrder::Due => SortKey(self.due, 0),
        }
    }
}

/// A row's sort key in an order, before its stream: compared as a pair, the second part 0
/// where the order has one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey(pub(crate) i64, pub(crate) i64);

impl SortKey {
    /// The key as a cursor carries it: `first` or `first:second`.
    pub(crate) fn encode(self, order: RecordOrder) -> String {
        match order {
            RecordOrder::LoggedDesc | RecordOrder::LoggedAsc | RecordOrder::Due => {
                self.0.to_string()
            }
            RecordOrder::Priority => format!("{}:{}", self.0, self.1),
        }
    }

    /// Reads a cursor's key back.
    pub(crate) fn decode(order: RecordOrder, key: &str) -> Result<Self, CursorError> {
        let bad = || CursorError::BadKey {
            order: order_name(order),
            key: key.to_owned(),
        };
        let int = |s: &str| s.parse::<i64>().map_err(|_| bad());
        match order {
            RecordOrder::LoggedDesc | RecordOrder::LoggedAsc | RecordOrder::Due => {
                Ok(SortKey(int(key)?, 0))
            }
            RecordOrder::Priority => {
                let (priority, logged) = key.split_once(':').ok_or_else(bad)?;
                let priority = int(priority)?;
                if !(1..=NO_PRIORITY).contains(&priority) {
                    return Err(bad());
                }
                Ok(SortKey(priority, int(logged)?))
            }
        }
    }
}

/// Whether `order` lists rows by descending key.
pub(crate) fn descending(order: RecordOrder) -> bool {
    match order {
        RecordOrder::LoggedDesc => true,
        RecordOrder::LoggedAsc | RecordOrder::Priority | RecordOrder::Due => false,
    }
}

/// The query's cursor as a key and stream, refused when it belongs to another order.
pub(crate) fn cursor_key(query: &RecordQuery) -> Result<Option<(SortKey, &Cursor)>, CursorError> {
    let Some(cursor) = &query.after else {
        return Ok(None);
    };
    if cursor.order != query.order {
        return Err(CursorError::OtherOrder {
            cursor: order_name(cursor.order),
            query: order_name(query.order),
        });
    }
    Ok(Some((SortKey::decode(cursor.order, &cursor.key)?, cursor)))
}

/// The cursor after `row` in `order`.
pub(crate) fn cursor_after(row: &RecordRow, order: RecordOrder) -> Cursor {
    Cursor {
        order,
        key: Keys::of(row).sort_key(order).encode(order),
        stream: row.stream.clone(),
    }
}

/// How a row of key `a` and stream `a_stream` compares to one of key `b` in an order whose
/// direction is `descending` (ties broken by stream, so never `Equal` for two streams).
pub(crate) fn compare(
    (a, a_stream): (SortKey, &StreamId),
    (b, b_stream): (SortKey, &StreamId),
    descending: bool,
) -> Ordering {
    let ascending = a.cmp(&b).then_with(|| a_stream.cmp(b_stream));
    if descending {
        ascending.reverse()
    } else {
        ascending
    }
}

/// Whether `row`, whose keys are `keys`, satisfies every filter of `query` (its order,
/// cursor and limit aside).
pub(crate) fn matches(row: &RecordRow, keys: Keys, query: &RecordQuery) -> bool {
    fn any_of<T: PartialEq>(list: &[T], value: &T) -> bool {
        list.is_empty() || list.contains(value)
    }
    fn any_of_opt<T: PartialEq>(list: &[T], value: Option<&T>) -> bool {
        list.is_empty() || value.is_some_and(|v| list.contains(v))
    }
    any_of(&query.record_types, &row.record_type)
        && any_of(&query.statuses, &row.status)
        && any_of(&query.phases, &row.phase)
        && any_of_opt(&query.priorities, row.priority.as_ref())
        && any_of_opt(&query.groups, row.group.as_ref())
        && any_of_opt(&query.persons, row.person.as_ref())
        && any_of(&query.services, &row.service)
        && query
            .ci
            .as_ref()
            .is_none_or(|ci| row.affected_cis.contains(ci))
        && query.breached.is_none_or(|b| row.breached() == b)
        && query.due_by.is_none_or(|by| keys.due <= micros(by))
        && query.text.as_ref().is_none_or(|text| {
            row.summary
                .to_ascii_lowercase()
                .contains(&text.to_ascii_lowercase())
        })
        && query
            .logged_from
            .is_none_or(|from| keys.logged >= micros(from))
        && query
            .logged_until
            .is_none_or(|until| keys.logged < micros(until))
}

/// One page of `rows` (every row matching the query, in the query's order, after its
/// cursor, and one more row when there is one): the page and the cursor to the next.
pub(crate) fn page(mut rows: Vec<RecordRow>, query: &RecordQuery) -> RecordPage {
    let size = query.page_size();
    let more = rows.len() > size;
    rows.truncate(size);
    let next = if more {
        rows.last().map(|row| cursor_after(row, query.order))
    } else {
        None
    };
    RecordPage { rows, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_cursors() {
        for order in [
            RecordOrder::LoggedDesc,
            RecordOrder::LoggedAsc,
            RecordOrder::Due,
        ] {
            for key in [SortKey(-5, 0), SortKey(NO_DUE, 0), SortKey(i64::MIN, 0)] {
                assert_eq!(SortKey::decode(order, &key.encode(order)), Ok(key));
            }
        }
        let key = SortKey(NO_PRIORITY, -1_000);
        assert_eq!(
            SortKey::decode(RecordOrder::Priority, &key.encode(RecordOrder::Priority)),
            Ok(key)
        );
    }

    #[test]
    fn made_up_keys_are_refused() {
        for (order, key) in [
            (RecordOrder::LoggedDesc, ""),
            (RecordOrder::LoggedAsc, "12:3"),
            (RecordOrder::Due, "soon"),
            (RecordOrder::Priority, "7:0"),
            (RecordOrder::Priority, "0:0"),
            (RecordOrder::Priority, "3"),
        ] {
            assert!(
                matches!(SortKey::decode(order, key), Err(CursorError::BadKey { .. })),
                "{order:?} {key:?}"
            );
        }
    }
}
