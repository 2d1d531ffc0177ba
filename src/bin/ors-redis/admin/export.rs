//! What `sessions export` reads: every session of the cluster name with its
//! value and remaining TTL, in batches. [`Admin::export_source`] is the one
//! place that reads them; the command only writes what it is handed.
//!
//! It is the library's bulk read (`ors_session_restore`'s engine): every
//! master at once, each slot's keys listed and their values and TTLs read
//! pipelined, each session exactly once even while a master fails over or
//! slots migrate. A session gone or expired meanwhile is left out.

use std::sync::Arc;

use ors_redis::operator::{BulkRead, Client, Owner, Result, Want};

use super::Admin;

/// One session as the export reads it.
#[derive(Debug, Clone, Copy)]
pub struct Exported<'a> {
    pub id: &'a [u8],
    pub value: &'a [u8],
    /// As PTTL gives it: milliseconds left, or -1 for a key without TTL.
    pub pttl_ms: i64,
}

/// What the export's source hands on, a batch at a time.
pub type BatchFn<'a> = dyn FnMut(&[Exported<'_>]) -> Result<()> + 'a;

impl Admin {
    /// Every session whose id starts with `id_prefix`, handed to `batch` a
    /// few hundred at a time, each once. An error of `batch` stops the
    /// export.
    pub fn export_source(&mut self, id_prefix: &[u8], batch: &mut BatchFn<'_>) -> Result<()> {
        let client = Arc::new(Client::connect(self.config.clone(), 0)?);
        let mut read = BulkRead::start(client, id_prefix, Want::ValuesAndTtl, Owner::Operator)?;
        while let Some(sessions) = read.next_batch()? {
            let out: Vec<Exported<'_>> = sessions
                .records()
                .filter_map(|r| {
                    // -2: gone since the GET; 0: expiring now.
                    let pttl_ms = r.pttl_ms.filter(|&ms| ms > 0 || ms == -1)?;
                    Some(Exported {
                        id: r.id,
                        value: r.value,
                        pttl_ms,
                    })
                })
                .collect();
            batch(&out)?;
            drop(out);
            read.recycle(sessions);
        }
        Ok(())
    }
}
