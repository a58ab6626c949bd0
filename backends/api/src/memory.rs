//! An in-memory [`ObjectStore`] with the same conditional-write semantics as S3, for tests of
//! the logic built on the trait.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{Condition, Object, ObjectStore, StoreError, Written};

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<Objects>,
}

#[derive(Debug, Default)]
struct Objects {
    /// By key: the bytes, and the number of the write that made them (their ETag).
    by_key: BTreeMap<String, (Vec<u8>, u64)>,
    last: u64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn etag(n: u64) -> String {
        format!("\"{n:08x}\"")
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    fn describe(&self, key: &str) -> String {
        format!("memory://{key}")
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let objects = &self.objects.lock().unwrap_or_else(|e| e.into_inner()).by_key;
        Ok(objects.get(key).map(|(bytes, n)| Object { bytes: bytes.clone(), etag: Self::etag(*n), version_id: None }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<Written, StoreError> {
        let mut guard = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        let Objects { by_key: objects, last } = &mut *guard;
        let current = objects.get(key).map(|(_, n)| Self::etag(*n));
        let ok = match &condition {
            Condition::None => true,
            Condition::IfNoneMatch => current.is_none(),
            Condition::IfMatch(etag) => current.as_deref() == Some(etag.as_str()),
        };
        if !ok {
            return Err(StoreError::PreconditionFailed);
        }
        *last += 1;
        objects.insert(key.to_string(), (bytes, *last));
        Ok(Written { etag: Self::etag(*last), version_id: None })
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<(), StoreError> {
        let objects = &mut self.objects.lock().unwrap_or_else(|e| e.into_inner()).by_key;
        if let (Some(want), Some((_, n))) = (if_match, objects.get(key)) {
            if Self::etag(*n) != want {
                return Err(StoreError::PreconditionFailed);
            }
        }
        objects.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_let_one_writer_win() {
        let s = MemoryStore::new();
        let a = s.put("k", b"1".to_vec(), Condition::IfNoneMatch).await.unwrap();
        assert!(matches!(s.put("k", b"2".to_vec(), Condition::IfNoneMatch).await, Err(StoreError::PreconditionFailed)));
        let b = s.put("k", b"3".to_vec(), Condition::IfMatch(a.etag.clone())).await.unwrap();
        assert!(matches!(
            s.put("k", b"4".to_vec(), Condition::IfMatch(a.etag.clone())).await,
            Err(StoreError::PreconditionFailed)
        ));
        assert_eq!(s.get("k").await.unwrap().unwrap().bytes, b"3");
        assert!(matches!(s.delete("k", Some(&a.etag)).await, Err(StoreError::PreconditionFailed)));
        s.delete("k", Some(&b.etag)).await.unwrap();
        assert_eq!(s.get("k").await.unwrap(), None);
    }
}
