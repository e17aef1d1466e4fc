//! The create path.

use crate::container::Container;
use crate::error::Result;
use crate::runtime::{CreateOptions, Runtime};
use std::path::Path;

pub(crate) fn create(runtime: &Runtime, id: &str, bundle: &Path, options: &CreateOptions) -> Result<Container> {
    let _ = (runtime, id, bundle, options);
    todo!()
}
