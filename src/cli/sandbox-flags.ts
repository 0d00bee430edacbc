// The flag every `shoal sandbox` command takes: where the sandbox lives.
import {Flags} from '@oclif/core'

export const sandboxDirFlag = Flags.string({description: 'Sandbox directory (keys, inventory, per-host files)', default: '.shoal/sandbox'})
