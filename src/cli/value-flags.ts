// Flags giving env parameter values (create, apply, plan, render); read by workspace/values.ts.
import {Flags} from '@oclif/core'

export const valueFlags = {
  set: Flags.string({description: 'Give an env parameter a value: NAME=VALUE (repeatable; wins over --values files; with several specs CLUSTER.NAME=VALUE). Values given once stay registered until changed or --unset', multiple: true, helpGroup: 'VALUES'}),
  values: Flags.string({description: 'A YAML file mapping env parameter names to values (repeatable; later files win); with several specs, cluster names to such mappings', multiple: true, helpGroup: 'VALUES'}),
  'set-file': Flags.string({description: "Give an env parameter a file's content as its value: NAME=PATH (repeatable; for keys and certificates); with several specs CLUSTER.NAME=PATH", multiple: true, helpGroup: 'VALUES'}),
  unset: Flags.string({description: 'Return a registered env parameter to its default (repeatable; with several specs CLUSTER.NAME)', multiple: true, helpGroup: 'VALUES'}),
}
