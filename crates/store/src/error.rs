#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The object changed since the caller read it.
    #[error("{key} has revision {current}, not {expected}")]
    Conflict { key: String, expected: u64, current: u64 },
    #[error("revision {requested} has been compacted (oldest is {oldest})")]
    Compacted { requested: u64, oldest: u64 },
    #[error("store: {0}")]
    Io(String),
    #[error("the store is closed")]
    Closed,
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Io(e.to_string()) }
        }
    )*};
}
from_redb!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);
