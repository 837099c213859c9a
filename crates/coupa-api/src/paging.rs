//! Listing every record of a query, correctly while the caller changes the result set.
//!
//! The usual loop (`offset += 50` until a short page) skips records when the caller marks
//! `exported=false` records exported as it goes: each acknowledgement shrinks the set, so the
//! next offset jumps over records that moved up. Paging by id (`id[gt]=<last>`, ordered by id
//! ascending) has a cursor that does not move when earlier records leave the set, so every
//! record that matches when its page is read is seen exactly once. [`PageBy::Offset`] exists to
//! show the difference in tests and for resources that cannot be ordered by id.

use std::marker::PhantomData;

use futures_util::Stream;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::query::{Dir, Query};
use crate::wire::DecodeError;

/// Coupa's largest page.
pub const MAX_PAGE: u32 = 50;

/// One record that could not be decoded, with its id when the record had one, so the caller
/// can report it and go on with the rest of the page.
#[derive(Debug, thiserror::Error)]
#[error("record {}: {error}", id.map_or_else(|| "without id".to_owned(), |i| i.to_string()))]
pub struct RecordError {
    pub id: Option<i64>,
    pub error: DecodeError,
}

/// A record of a page: decoded, or the reason it could not be.
pub type Item<T> = Result<T, RecordError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageBy {
    /// `id[gt]=<last id>&order_by=id&dir=asc`: skip-proof.
    Id,
    /// `offset=<n>`: skips records when the result set shrinks while paging.
    Offset,
}

/// Pages through a listing. Each page is one request; nothing beyond one page is held.
pub struct Pager<T> {
    client: Client,
    path: String,
    query: Query,
    by: PageBy,
    last_id: Option<i64>,
    offset: u64,
    done: bool,
    _record: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + 'static> Pager<T> {
    pub(crate) fn new(client: Client, path: impl Into<String>, query: Query) -> Self {
        Pager {
            client,
            path: path.into(),
            query,
            by: PageBy::Id,
            last_id: None,
            offset: 0,
            done: false,
            _record: PhantomData,
        }
    }

    /// Pages with `offset` instead of by id, keeping the query's own order.
    pub fn by_offset(mut self) -> Self {
        self.by = PageBy::Offset;
        self
    }

    /// Starts after this id (resuming an interrupted listing).
    pub fn after_id(mut self, id: i64) -> Self {
        self.last_id = Some(id);
        self
    }

    fn page_size(&self) -> u32 {
        self.query
            .page_size()
            .unwrap_or(MAX_PAGE)
            .clamp(1, MAX_PAGE)
    }

    fn page_query(&self) -> Query {
        let size = self.page_size();
        match self.by {
            PageBy::Id => {
                let mut q = self.query.clone().without_filter("id[gt]").without_paging();
                if let Some(last) = self.last_id {
                    q = q.gt("id", last);
                }
                q.order_by("id", Dir::Asc).limit(size)
            }
            PageBy::Offset => self.query.clone().offset(self.offset).limit(size),
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Item<T>>>, Error> {
        if self.done {
            return Ok(None);
        }
        let query = self.page_query();
        let items = self.client.fetch_list::<T>(&self.path, &query).await?;
        let n = items.len();
        if n < self.page_size() as usize {
            self.done = true;
        }
        if n == 0 {
            return Ok(None);
        }
        match self.by {
            PageBy::Offset => self.offset += n as u64,
            PageBy::Id => {
                let last = items.last().and_then(|(id, _)| *id).ok_or_else(|| {
                    Error::new(
                        "GET",
                        self.path.clone(),
                        ErrorKind::Invalid(
                            "paging by id needs `id` in every record: add it to `fields`".into(),
                        ),
                    )
                })?;
                if self.last_id.is_some_and(|prev| last <= prev) {
                    // The server ignored the cursor; stop rather than loop forever.
                    return Err(Error::new(
                        "GET",
                        self.path.clone(),
                        ErrorKind::Invalid(format!(
                            "id paging did not advance (last id {last}): the server ignored id[gt]"
                        )),
                    ));
                }
                self.last_id = Some(last);
            }
        }
        Ok(Some(items.into_iter().map(|(_, item)| item).collect()))
    }

    /// Every record, page by page, as a stream; a request failure ends the stream with it.
    pub fn into_stream(self) -> impl Stream<Item = Result<Item<T>, Error>> + Send {
        futures_util::stream::unfold(
            (self, std::collections::VecDeque::new(), false),
            |(mut pager, mut buf, failed)| async move {
                loop {
                    if let Some(item) = buf.pop_front() {
                        return Some((Ok(item), (pager, buf, failed)));
                    }
                    if failed {
                        return None;
                    }
                    match pager.next_page().await {
                        Ok(Some(page)) => buf.extend(page),
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), (pager, buf, true))),
                    }
                }
            },
        )
    }

    /// Reads every page into memory: for short listings (integrations, a document's history
    /// records), never for documents.
    pub async fn collect_all(mut self) -> Result<Vec<Item<T>>, Error> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}
