package luart

// buildPrepared builds generation number and prepares every
// extension.Preparer for it. The generation may become current only when
// both succeed; commit must then be called right after it does.
func (e *Engine) buildPrepared(number uint64) (g *generation, commit func(), err error) {
	g, err = build(e, number)
	if err != nil {
		return nil, nil, err
	}
	commits := make([]func(), 0, len(e.opts.Preparers))
	for _, p := range e.opts.Preparers {
		c, err := p.Prepare(e.opts.RulesDir)
		if err != nil {
			g.retire()
			return nil, nil, err
		}
		commits = append(commits, c)
	}
	return g, func() {
		for _, c := range commits {
			c()
		}
	}, nil
}
