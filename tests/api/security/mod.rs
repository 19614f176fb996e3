//! The security half of the hardening suite (issue 17): who may call what (the authorization
//! matrix, with every id tried as another user's), the limits, secrets never stored or logged in
//! plain text, and the schema fuzzer. See docs/reliability.md.
mod fuzz;
mod limits;
mod matrix;
mod secrets;
mod world;
