//! Fixture builders shared by the end-to-end tests.
