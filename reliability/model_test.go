package reliability_test

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/stretchr/testify/assert"
)

// TestKVModel_RejectsViolations makes sure the checker can fail: each
// history below is one a broken client or server could produce.
func TestKVModel_RejectsViolations(t *testing.T) {
	op := func(client int, in kvInput, call, ret int64, out kvOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    bool // linearizable
	}{
		{"stale read after a write returned", []porcupine.Operation{
			op(0, kvInput{op: "put", key: "a", value: "1"}, 0, 10, kvOutput{ok: true}),
			op(1, kvInput{op: "get", key: "a"}, 20, 30, kvOutput{}),
		}, false},
		{"two CAS from the same value both succeed", []porcupine.Operation{
			op(0, kvInput{op: "put", key: "a", value: "1"}, 0, 10, kvOutput{ok: true}),
			op(1, kvInput{op: "cas", key: "a", value: "2", expect: "1"}, 20, 30, kvOutput{ok: true}),
			op(2, kvInput{op: "cas", key: "a", value: "3", expect: "1"}, 40, 50, kvOutput{ok: true}),
		}, false},
		{"lost update", []porcupine.Operation{
			op(0, kvInput{op: "put", key: "a", value: "1"}, 0, 10, kvOutput{ok: true}),
			op(1, kvInput{op: "update", key: "a", value: "x"}, 20, 30, kvOutput{ok: true, value: "1+x"}),
			op(2, kvInput{op: "update", key: "a", value: "y"}, 40, 50, kvOutput{ok: true, value: "1+y"}),
		}, false},
		{"concurrent writes in either order", []porcupine.Operation{
			op(0, kvInput{op: "put", key: "a", value: "1"}, 0, 30, kvOutput{ok: true}),
			op(1, kvInput{op: "put", key: "a", value: "2"}, 5, 25, kvOutput{ok: true}),
			op(2, kvInput{op: "get", key: "a"}, 40, 50, kvOutput{ok: true, value: "1"}),
		}, true},
		{"an ambiguous write that never took effect", []porcupine.Operation{
			op(0, kvInput{op: "put", key: "a", value: "1"}, 0, 10, kvOutput{ok: true}),
			op(1, kvInput{op: "put", key: "a", value: "2"}, 20, math.MaxInt64, kvOutput{unknown: true}),
			op(2, kvInput{op: "get", key: "a"}, 40, 50, kvOutput{ok: true, value: "1"}),
		}, true},
		{"an ambiguous write that took effect", []porcupine.Operation{
			op(0, kvInput{op: "put", key: "a", value: "1"}, 0, 10, kvOutput{ok: true}),
			op(1, kvInput{op: "put", key: "a", value: "2"}, 20, math.MaxInt64, kvOutput{unknown: true}),
			op(2, kvInput{op: "get", key: "a"}, 40, 50, kvOutput{ok: true, value: "2"}),
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, porcupine.CheckOperations(kvModel, tt.history), "linearizable")
		})
	}
}
