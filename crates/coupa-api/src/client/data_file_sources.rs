//! Data file sources: how Coupa's CSV loader fared with an uploaded file.

use reqwest::Method;

use super::Client;
use crate::domain::DataFileSourceId;
use crate::error::Error;
use crate::paging::Pager;
use crate::query::Query;
use crate::transport::Request;
use crate::wire::DataFileSource;

const PATH: &str = "/api/data_file_sources";

pub struct DataFileSources<'a>(pub(super) &'a Client);

impl DataFileSources<'_> {
    pub fn list(&self, query: Query) -> Pager<DataFileSource> {
        self.0.pager(PATH, query)
    }

    pub async fn get(&self, id: DataFileSourceId) -> Result<DataFileSource, Error> {
        self.0
            .fetch(Request::new(Method::GET, format!("{PATH}/{id}")))
            .await
    }
}
