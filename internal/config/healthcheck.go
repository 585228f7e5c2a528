package config

import (
	"errors"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/health"
)

// healthCheck decodes a health_check mapping. The check's own rules
// (kinds, ranges, which fields go with which kind) are health.Spec's;
// Validate reports them under this path.
func (d *decoder) healthCheck(n *yaml.Node, path string) *health.Spec {
	if isNull(resolve(n)) {
		return nil
	}
	s := &health.Spec{}
	str := func(dst *string) func(*yaml.Node, string) {
		return func(v *yaml.Node, p string) {
			if x, ok := d.str(v, p); ok {
				*dst = x
			}
		}
	}
	count := func(dst *int) func(*yaml.Node, string) {
		return func(v *yaml.Node, p string) {
			if x, ok := d.integer(v, p, "a count (1-100)", 1, 100); ok {
				*dst = int(x)
			}
		}
	}
	d.mapping(n, path, fieldDecoders{
		"kind":     str(&s.Kind),
		"interval": func(v *yaml.Node, p string) { d.duration(v, p, &s.Interval) },
		"timeout":  func(v *yaml.Node, p string) { d.duration(v, p, &s.Timeout) },
		"rise":     count(&s.Rise),
		"fall":     count(&s.Fall),
		"initial":  str(&s.Initial),
		"path":     str(&s.Path),
		"host":     str(&s.Host),
		"expect":   str(&s.Expect),
		"sni":      str(&s.SNI),
		"payload":  str(&s.Payload),
		"insecure_skip_verify": func(v *yaml.Node, p string) {
			if b, ok := d.boolean(v, p); ok {
				s.InsecureSkipVerify = &b
			}
		},
		"expect_status": func(v *yaml.Node, p string) {
			d.list(v, p, func(item *yaml.Node, ip string) {
				x, ok := d.str(item, ip)
				if !ok {
					return
				}
				r, err := health.ParseStatusRange(x)
				if err != nil {
					d.add(ip, "%v", err)
					return
				}
				s.ExpectStatus = append(s.ExpectStatus, r)
			})
		},
		"command": func(v *yaml.Node, p string) {
			d.list(v, p, func(item *yaml.Node, ip string) {
				if x, ok := d.str(item, ip); ok {
					s.Command = append(s.Command, x)
				}
			})
		},
	})
	s.Defaults()
	return s
}

// healthProblems reports a check's problems under path.
func (ps *problems) healthProblems(path string, s *health.Spec) {
	if s == nil {
		return
	}
	err := s.Validate()
	if err == nil {
		return
	}
	var errs interface{ Unwrap() []error }
	list := []error{err}
	if errors.As(err, &errs) {
		list = errs.Unwrap()
	}
	for _, e := range list {
		var fe *health.FieldError
		if errors.As(e, &fe) {
			ps.add(field(path, fe.Field), "%s", fe.Msg)
		} else {
			ps.add(path, "%v", e)
		}
	}
}
