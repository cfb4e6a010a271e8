//! Stands in for the PostgreSQL tests when they are not built (no `SMSYS_TEST_DATABASE_URL`
//! and not `CI=true`, see `build.rs`): the test summary then counts this one as ignored, and
//! its name and reason say why.

#![cfg(not(smsys_pg_tests))]

#[test]
#[ignore = "PostgreSQL tests skipped: set SMSYS_TEST_DATABASE_URL, e.g. 'host=127.0.0.1 user=postgres dbname=test'"]
fn postgres_tests_skipped_set_smsys_test_database_url() {}
