//! smsys processes
