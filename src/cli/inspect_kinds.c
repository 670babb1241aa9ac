/* `chainz inspect`: the descriptions of a metrics file and of an HDF5 file chainz does
 * not know (the checkpoint, data and run views, which load more, are in cmd_inspect.c). */
#include <math.h>
#include <stdio.h>

#include "chainz/h5probe.h"
#include "chainz/metrics_read.h"
#include "inspect_internal.h"

/* ---- metrics.h5 ---- */

void cz_inspect_emit_metrics(cz_emit *e, const cz_metrics_data *md)
{
    em_str(e, "kind", "metrics");
    em_str(e, "path", md->path);
    em_int(e, "version", md->version);
    em_int(e, "history_length", (long long)md->n_epochs);
    if (md->n_epochs) {
        em_row(e, "epochs_recorded");
        em_num(e, "first", md->epoch[0]);
        em_num(e, "last", md->epoch[md->n_epochs - 1]);
        em_end(e);
        em_num(e, "last_train_loss", md->train_loss[md->n_epochs - 1]);
        em_num(e, "last_val_acc", md->val_acc[md->n_epochs - 1]);
    } else {
        em_str(e, "epochs_recorded", NULL);
    }
    em_obj(e, "families");
    size_t L = md->n_epochs ? md->n_epochs - 1 : 0;
    for (int i = 0; i < md->n_families; i++) {
        const cz_metrics_family *f = &md->family[i];
        em_verbatim(e, 1);
        em_row(e, f->name);
        em_verbatim(e, 0);
        em_num(e, "count", md->n_epochs ? f->count[L] : NAN);
        em_num(e, "mean", md->n_epochs ? f->mean[L] : NAN);
        em_num(e, "p99", md->n_epochs ? f->p99[L] : NAN);
        em_num(e, "tau", md->n_epochs ? f->tau[L] : NAN);
        em_end(e);
    }
    em_end(e);
}

/* ---- another HDF5 file ---- */

void cz_inspect_emit_unknown(cz_emit *e, const cz_h5_probe *p, const char *path)
{
    em_str(e, "kind", "hdf5");
    em_str(e, "path", path);
    em_int(e, "file_bytes", (long long)p->bytes);
    char note[256];
    snprintf(note, sizeof note, "unknown HDF5 file: not a chainz checkpoint, chainz-data set or metrics file "
             "(root attribute format: %s%s%s)", p->format[0] ? "'" : "", p->format[0] ? p->format : "none",
             p->format[0] ? "'" : "");
    em_str(e, "note", note);
    em_str(e, "format", p->format[0] ? p->format : NULL);
    em_obj(e, "root_attributes");
    em_verbatim(e, 1);
    for (int i = 0; i < p->n_attrs; i++) em_str(e, p->attr_name[i], p->attr_value[i]);
    em_verbatim(e, 0);
    em_end(e);
    em_obj(e, "root_members");
    em_verbatim(e, 1);
    for (int i = 0; i < p->n_objects; i++) em_str(e, p->object_name[i], p->object_kind[i]);
    em_verbatim(e, 0);
    em_end(e);
    if (p->more_attrs || p->more_objects) em_bool(e, "lists_cut", 1);
}
