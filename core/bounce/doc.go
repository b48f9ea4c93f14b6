// Package bounce reads bounces, feedback reports and automatic replies, and
// classifies each failed recipient into the bounce taxonomy.
package bounce
