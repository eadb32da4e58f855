//! latchkey settings (skeleton)
