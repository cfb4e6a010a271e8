//! smsys
