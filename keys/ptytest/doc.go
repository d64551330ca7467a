// Package ptytest gives tests a serial cable without the hardware: a
// pseudo-terminal pair, whose master end a lock simulator serves and whose
// other end a driver opens as its serial port. Linux only.
package ptytest
