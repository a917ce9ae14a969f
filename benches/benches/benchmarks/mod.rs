pub mod prove;
