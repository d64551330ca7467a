//go:build !linux

package main

func procUsage(int) (int, int64, error) { return 0, 0, errNotLinux }
