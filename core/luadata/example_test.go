package luadata_test

import (
	"fmt"

	"corriere/core/luadata"
)

// A data file returns a table; a mistake in it is reported at its line.
func ExampleRun() {
	c, err := luadata.Compile("rules/limits.lua", []byte(`return {
  gmail = { per_hour = 1000 },
  yahoo = { per_hour = string.rep("9", 1e9) },
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = luadata.Run(c, luadata.Options{})
	fmt.Println(err)
	// Output: rules/limits.lua:3: string.rep: result longer than 1048576 bytes
}
