//! Credentials, the realm (scheme, host, port) each belongs to, and redaction so that
//! secrets never reach logs or error messages. (Being built under issue 5.)

pub mod kaggle;
