//! Running one statement on a pooled connection, and keeping lost connections out of the pool.

use std::pin::pin;

use deadpool_postgres::{Hook, HookError, Object, Pool};
use futures::TryStreamExt;
use smsys_core::{StoreError, TenantId};
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::error::{Class, class_of, pool_error, store_error};

/// Sets every new pooled connection to READ COMMITTED, the isolation the append design
/// needs (see `append`), whatever the server, database, role or connection-string default:
/// statements outside an explicit transaction (and `BEGIN` without a level) run at the
/// session's level. With `tenant`, also sets the session setting `smsys.tenant` that the
/// row-level security policies of tenant schemas check (see `tenants`).
pub(crate) fn read_committed(tenant: Option<TenantId>) -> Hook {
    Hook::async_fn(move |client, _| {
        let tenant = tenant.clone();
        Box::pin(async move {
            client
                .batch_execute(
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
                )
                .await
                .map_err(HookError::Backend)?;
            if let Some(tenant) = tenant {
                client
                    .execute(
                        "SELECT set_config('smsys.tenant', $1, false)",
                        &[&tenant.as_str()],
                    )
                    .await
                    .map_err(HookError::Backend)?;
            }
            Ok(())
        })
    })
}

/// Gives `client` back to the pool unless `error` says its connection is lost: a connection
/// terminated by the server is not always noticed as closed by the time it is returned, and
/// the next caller would fail on it.
pub(crate) fn release_after(client: Object, error: &tokio_postgres::Error) {
    if class_of(error) == Class::Transient {
        drop(Object::take(client));
    }
}

/// Runs `sql` (prepared once per connection) on a pooled connection.
pub(crate) async fn query(
    pool: &Pool,
    operation: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let client = pool.get().await.map_err(|e| pool_error(operation, e))?;
    let result = async {
        let statement = client.prepare_cached(sql).await?;
        client.query(&statement, params).await
    }
    .await;
    result.map_err(|error| {
        release_after(client, &error);
        store_error(operation, error)
    })
}

/// Runs `sql` (prepared once per connection) on a pooled connection and hands each row to
/// `each` as it arrives, so decoding overlaps with the rest of the result still on its way.
/// Once `each` returns `Ok(false)` or an error, the remaining rows are read off the connection
/// but not handed on; the error is returned at the end.
pub(crate) async fn each_row(
    pool: &Pool,
    operation: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    mut each: impl FnMut(&Row) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let client = pool.get().await.map_err(|e| pool_error(operation, e))?;
    let outcome = async {
        let statement = client.prepare_cached(sql).await?;
        let rows = client.query_raw(&statement, params.iter().copied()).await?;
        let mut rows = pin!(rows);
        let (mut wanted, mut refused) = (true, None);
        while let Some(row) = rows.try_next().await? {
            if wanted {
                match each(&row) {
                    Ok(more) => wanted = more,
                    Err(error) => (wanted, refused) = (false, Some(error)),
                }
            }
        }
        Ok(refused)
    }
    .await;
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(refused)) => Err(refused),
        Err(error) => {
            release_after(client, &error);
            Err(store_error(operation, error))
        }
    }
}

/// Runs `sql` with explicitly typed parameters on a pooled connection, unprepared: one round
/// trip, planned for these parameter values (for statements built per query).
pub(crate) async fn query_typed(
    pool: &Pool,
    operation: &'static str,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>, StoreError> {
    let client = pool.get().await.map_err(|e| pool_error(operation, e))?;
    client.query_typed(sql, params).await.map_err(|error| {
        release_after(client, &error);
        store_error(operation, error)
    })
}
