mod error;
pub mod quantity;
pub mod schema;
pub use error::{ApiError, FieldCause};
