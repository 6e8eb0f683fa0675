// Package rollovertest holds the fleet proof of a CA rollover
// (TestRolloverFleet): package certs's steps run against the real local
// stack (internal/stacktest: Mosquitto + nginx) with the security suite at
// every step. It is its own package so that certs's unit tests do not
// depend on the stack, the security suite and their dependencies.
package rollovertest
