package mewstest

import "github.com/mews-keyd/mews-keyd/mews"

func (s *Server) opGetDevices([]byte) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return struct {
		Devices []mews.Device `json:"Devices"`
	}{s.devices.all()}, nil
}
