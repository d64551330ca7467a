// Package salto is the key-encoder driver for Salto's "PMS Industry
// Standard" protocol, which Salto's PC interface (and TESA's HT24) offers a
// PMS over TCP. The driver registers itself as "salto"; the package
// saltotest holds a simulated Salto interface for tests.
package salto
