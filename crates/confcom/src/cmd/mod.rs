pub mod inspect;
pub mod addon;
pub mod webhook;
