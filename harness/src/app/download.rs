//! `mtls-e2e download`: every pinned release file into the cache, so that the
//! kind substrate and the CRD validation tests find them there (offline too).

use std::path::PathBuf;

use crate::error::Error;
use crate::exit::Exit;
use crate::substrate::cluster::{self, download, install};

pub(crate) async fn command(cache: Option<PathBuf>) -> Result<Exit, Error> {
    let cache = cache.unwrap_or_else(cluster::default_cache);
    for d in install::pinned_downloads() {
        download::fetch(&d, &cache)
            .await
            .map_err(|e| Error::from(&e))?;
        println!("{}  {}", d.sha256, d.cached(&cache).display());
    }
    Ok(Exit::Ok)
}
