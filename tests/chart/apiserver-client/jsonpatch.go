// RFC 6902 JSON patch, applied the way the API server applies a mutating webhook's patch: every
// operation must succeed on the object as it stands (an "add" under a missing parent fails).
package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

type operation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from"`
	Value json.RawMessage `json:"value"`
}

func applyPatch(object map[string]interface{}, patch []byte) (interface{}, error) {
	var ops []operation
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("patch is not a JSON patch array: %w", err)
	}
	// Work on a deep copy so the caller's object stays as sent.
	raw, err := json.Marshal(object)
	if err != nil {
		return nil, err
	}
	var doc interface{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	for i, op := range ops {
		var value interface{}
		if op.Op == "add" || op.Op == "replace" || op.Op == "test" {
			if op.Value == nil {
				return nil, fmt.Errorf("operation %d (%s %s): missing value", i, op.Op, op.Path)
			}
			if err := json.Unmarshal(op.Value, &value); err != nil {
				return nil, fmt.Errorf("operation %d: value: %w", i, err)
			}
		}
		if doc, err = applyOne(doc, op, value); err != nil {
			return nil, fmt.Errorf("operation %d (%s %s): %w", i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

func applyOne(doc interface{}, op operation, value interface{}) (interface{}, error) {
	switch op.Op {
	case "add":
		return set(doc, op.Path, value, true)
	case "replace":
		if _, err := get(doc, op.Path); err != nil {
			return nil, err
		}
		return set(doc, op.Path, value, false)
	case "remove":
		return remove(doc, op.Path)
	case "test":
		got, err := get(doc, op.Path)
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(got, value) {
			return nil, fmt.Errorf("test failed: %v != %v", got, value)
		}
		return doc, nil
	case "copy", "move":
		got, err := get(doc, op.From)
		if err != nil {
			return nil, err
		}
		if op.Op == "move" {
			if doc, err = remove(doc, op.From); err != nil {
				return nil, err
			}
		}
		return set(doc, op.Path, got, true)
	}
	return nil, fmt.Errorf("unknown op %q", op.Op)
}

func tokens(pointer string) ([]string, error) {
	if pointer == "" {
		return nil, nil
	}
	if !strings.HasPrefix(pointer, "/") {
		return nil, fmt.Errorf("path %q is not a JSON pointer", pointer)
	}
	parts := strings.Split(pointer[1:], "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func index(token string, length int, allowEnd bool) (int, error) {
	if allowEnd && token == "-" {
		return length, nil
	}
	i, err := strconv.Atoi(token)
	if err != nil || i < 0 || i > length || (!allowEnd && i == length) || (len(token) > 1 && token[0] == '0') {
		return 0, fmt.Errorf("array index %q out of range (length %d)", token, length)
	}
	return i, nil
}

func get(doc interface{}, pointer string) (interface{}, error) {
	parts, err := tokens(pointer)
	if err != nil {
		return nil, err
	}
	cur := doc
	for _, p := range parts {
		switch node := cur.(type) {
		case map[string]interface{}:
			v, ok := node[p]
			if !ok {
				return nil, fmt.Errorf("%q: no member %q", pointer, p)
			}
			cur = v
		case []interface{}:
			i, err := index(p, len(node), false)
			if err != nil {
				return nil, err
			}
			cur = node[i]
		default:
			return nil, fmt.Errorf("%q: %q is below a scalar", pointer, p)
		}
	}
	return cur, nil
}

// set writes value at pointer; insert makes an array index insert (add) instead of overwrite.
func set(doc interface{}, pointer string, value interface{}, insert bool) (interface{}, error) {
	parts, err := tokens(pointer)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return value, nil
	}
	parentPath := parentPointer(parts)
	parent, err := get(doc, parentPath)
	if err != nil {
		return nil, fmt.Errorf("parent of %q does not exist: %w", pointer, err)
	}
	last := parts[len(parts)-1]
	switch node := parent.(type) {
	case map[string]interface{}:
		node[last] = value
	case []interface{}:
		i, err := index(last, len(node), insert)
		if err != nil {
			return nil, err
		}
		if insert {
			node = append(node, nil)
			copy(node[i+1:], node[i:])
		}
		node[i] = value
		if insert {
			if parentPath == "" {
				return node, nil
			}
			return set(doc, parentPath, node, false)
		}
	default:
		return nil, fmt.Errorf("parent of %q is a scalar", pointer)
	}
	return doc, nil
}

func remove(doc interface{}, pointer string) (interface{}, error) {
	parts, err := tokens(pointer)
	if err != nil || len(parts) == 0 {
		return nil, fmt.Errorf("cannot remove %q", pointer)
	}
	parentPath := parentPointer(parts)
	parent, err := get(doc, parentPath)
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	switch node := parent.(type) {
	case map[string]interface{}:
		if _, ok := node[last]; !ok {
			return nil, fmt.Errorf("%q: no member %q", pointer, last)
		}
		delete(node, last)
		return doc, nil
	case []interface{}:
		i, err := index(last, len(node), false)
		if err != nil {
			return nil, err
		}
		node = append(node[:i], node[i+1:]...)
		if parentPath == "" {
			return node, nil
		}
		return set(doc, parentPath, node, false)
	}
	return nil, fmt.Errorf("parent of %q is a scalar", pointer)
}

// parentPointer is the JSON pointer of the parent of parts ("" for the document itself).
func parentPointer(parts []string) string {
	if len(parts) <= 1 {
		return ""
	}
	return "/" + strings.Join(escape(parts[:len(parts)-1]), "/")
}

func escape(parts []string) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
	}
	return out
}
