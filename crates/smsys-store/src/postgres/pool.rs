//! Running one statement on a pooled connection, and keeping lost connections out of the pool.

use deadpool_postgres::{Object, Pool};
use smsys_core::StoreError;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::error::{Class, class_of, pool_error, store_error};

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
