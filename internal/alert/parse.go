package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/mloop/mloop"
)

// MaxRulesDocument bounds the size of a rules document, in bytes.
const MaxRulesDocument = 1 << 20

// rulesDoc is the YAML file layout: a list of rules under "rules".
type rulesDoc struct {
	Rules []Rule `yaml:"rules"`
}

// durationKeys are the keys whose values are durations.
var durationKeys = map[string]bool{"for": true, "timeout": true, "backoff": true}

// ParseRules reads rules written in YAML: a mapping with a list "rules"
// of rules (see Rule for the keys, written in snake case). Every rule is
// checked and gets its defaults. Unknown keys, values of the wrong type, bad
// values and duplicated names are EINVALID errors whose message starts with
// "line L:C:" (1-based line and column).
func ParseRules(data []byte) (rules []*Rule, err error) {
	if len(data) > MaxRulesDocument {
		return nil, mloop.Errorf(mloop.ETOOLARGE, "The rules document is %d bytes; at most %d are allowed.", len(data), MaxRulesDocument)
	}
	defer func() {
		// The YAML library has panicked on odd input before; a parser of
		// untrusted documents must not take the server down.
		if r := recover(); r != nil {
			rules, err = nil, mloop.Errorf(mloop.EINVALID, "Invalid rules document: the YAML parser failed: %v.", r)
		}
	}()
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(err)
	}
	if len(file.Docs) != 1 || file.Docs[0].Body == nil {
		return nil, mloop.Errorf(mloop.EINVALID, "A rules document is one YAML document with a list under \"rules\".")
	}
	body := file.Docs[0].Body
	if _, ok := body.(*ast.MappingNode); !ok {
		return nil, posError(body, "a rules document is a mapping with a list under \"rules\"")
	}
	if err := checkDurations(body); err != nil {
		return nil, err
	}
	var doc rulesDoc
	if err := yaml.NodeToValue(body, &doc, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(err)
	}
	seen := map[string]bool{}
	for i := range doc.Rules {
		r := &doc.Rules[i]
		at := fmt.Sprintf("$.rules[%d]", i)
		if err := r.check(); err != nil {
			var re *ruleError
			if errors.As(err, &re) {
				return nil, posError(nodeAt(file, at, re.path), "rule %q: %s: %s", r.Name, re.path, re.msg)
			}
			return nil, err
		}
		if seen[r.Name] {
			return nil, posError(nodeAt(file, at, "name"), "rule %q is listed twice", r.Name)
		}
		seen[r.Name] = true
		rules = append(rules, r)
	}
	return rules, nil
}

// ParseRule reads one rule written in JSON (the API's form: see Rule),
// checks it and fills its defaults. Unknown fields and trailing data are
// errors; all errors are EINVALID.
func ParseRule(data []byte) (*Rule, error) {
	if len(data) > MaxRulesDocument {
		return nil, mloop.Errorf(mloop.ETOOLARGE, "The rule is %d bytes; at most %d are allowed.", len(data), MaxRulesDocument)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Rule
	if err := dec.Decode(&r); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid alert rule JSON: %v.", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid alert rule JSON: data after the rule.")
	}
	r.CreatedAt, r.UpdatedAt = time.Time{}, time.Time{}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// checkDurations checks every value under a duration key before decoding,
// so that a bad duration is reported at its position.
func checkDurations(n ast.Node) error {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, v := range n.Values {
			if err := checkDurations(v); err != nil {
				return err
			}
		}
	case *ast.MappingValueNode:
		if k, ok := n.Key.(*ast.StringNode); ok && durationKeys[k.Value] {
			s, ok := n.Value.(*ast.StringNode)
			if !ok {
				return posError(n.Value, "%s: a duration is a string such as 30s or 2h", k.Value)
			}
			if _, err := time.ParseDuration(s.Value); err != nil {
				return posError(n.Value, "%s: invalid duration %q: use a number with a unit, such as 30s or 2h", k.Value, s.Value)
			}
			return nil
		}
		return checkDurations(n.Value)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			if err := checkDurations(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// nodeAt returns the node at base plus a dotted rule path ("condition.kind",
// "actions[0].webhook.url"), or the nearest existing parent.
func nodeAt(file *ast.File, base, path string) ast.Node {
	parts := strings.Split(path, ".")
	for n := len(parts); n >= 0; n-- {
		p := base
		if n > 0 {
			p += "." + strings.Join(parts[:n], ".")
		}
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		if node, err := yp.FilterFile(file); err == nil && node != nil {
			return node
		}
	}
	return nil
}

// posError returns an EINVALID error at n's position.
func posError(n ast.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			return mloop.Errorf(mloop.EINVALID, "line %d:%d: %s.", tk.Position.Line, tk.Position.Column, msg)
		}
	}
	return mloop.Errorf(mloop.EINVALID, "%s.", msg)
}

// yamlError turns a go-yaml error into an EINVALID error with its position.
func yamlError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return mloop.Errorf(mloop.EINVALID, "line %d:%d: %s.", tk.Position.Line, tk.Position.Column, strings.TrimSuffix(ye.GetMessage(), "."))
		}
		return mloop.Errorf(mloop.EINVALID, "Invalid rules document: %s.", ye.GetMessage())
	}
	return mloop.Errorf(mloop.EINVALID, "Invalid rules document: %v.", err)
}
