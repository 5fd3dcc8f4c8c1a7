// Package deploy holds the operators' kit: a Grafana dashboard, Prometheus alert rules, a container
// image file, a compose file for a one-command evaluation and a systemd unit. It has no code of its
// own; its tests check that the kit parses and that every query names a metric vaxgate exports.
package deploy
