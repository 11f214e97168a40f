//! The byte formats between the caller and its workers, each in one file with both its encoder
//! and its decoder: the framing ([`frame`]), requests ([`batch`]) and outcomes ([`outcome`]).
//! Both sides of the fork use them; neither trusts what the other sent.

pub(crate) mod batch;
pub(crate) mod frame;
pub(crate) mod outcome;
